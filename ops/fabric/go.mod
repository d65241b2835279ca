// Pins the Hyperledger Fabric release whose binaries MedFabric builds
// (peer, orderer, configtxgen, cryptogen, osnadmin). Fabric's go.mod has no
// /v3 suffix, so the v3.1.5 tag is required by its commit as a pseudo-version.
module medfabric.local/fabricbin

go 1.26

require github.com/hyperledger/fabric v1.4.0-rc1.0.20260618074816-86c1172bec37

// Reads a Caliper network configuration with Caliper's own Fabric connector code (peer-gateway binding) and
// prints, as JSON, what Caliper understood: per channel its contracts, per organization its identities and
// its peers in order (the first is the organization's gateway).
//   node read_caliper_network.js <caliper workspace> <network.yaml>
'use strict';

const [workspace, configPath] = process.argv.slice(2);
const load = (name) => require(require.resolve(name, {paths: [workspace]}));
const fabric = '@hyperledger/caliper-fabric/lib';
const ConnectorConfigurationFactory = load(`${fabric}/connector-configuration/ConnectorConfigurationFactory`);
const WalletFacadeFactory = load(`${fabric}/connector-versions/peer-gateway/WalletFacadeFactory`);

async function main() {
    const config = await new ConnectorConfigurationFactory().create(configPath, new WalletFacadeFactory());
    const understood = {mutualTls: config.isMutualTLS(), channels: {}, organizations: {}};
    for (const channel of config.getAllChannelNames()) {
        understood.channels[channel] = config.getContractDefinitionsForChannelName(channel).map((contract) => ({
            contractID: contract.contractID, ...config.getContractDetailsForContractId(contract.contractID),
        }));
    }
    for (const mspId of config.getOrganizations()) {
        const profile = await config.getConnectionProfileDefinitionForOrganization(mspId);
        const peers = profile.getPeersListForOrganization(mspId);
        understood.organizations[mspId] = {
            identities: await config.getAliasNamesForOrganization(mspId),
            admins: config.getAdminAliasNamesForOrganization(mspId),
            peers: peers.map((peer) => ({
                endpoint: profile.getGrpcEndPointForPeer(peer), tls: profile.isTLSRequiredForEndpoint(peer),
            })),
        };
    }
    process.stdout.write(JSON.stringify(understood));
}

main().catch((error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
});

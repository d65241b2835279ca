/*
 * The MedFabric Node baseline chaincode: emr_index PutRecord and GetRecord on the official Node
 * contract API, for comparing the Python chaincode with Hyperledger's own Node runtime under the
 * same Caliper workload (see README.md). fabric-chaincode-node loads `contracts` from here.
 */

'use strict';

const {EmrIndexContract} = require('./lib/emr-index');

module.exports.EmrIndexContract = EmrIndexContract;
module.exports.contracts = [EmrIndexContract];

/*
 * index-write: emr_index:PutRecord of a fresh, valid index entry per transaction.
 *
 * Round arguments:
 *   channel       (required) e.g. hospital-a-local (a domain's local channel) or public
 *   contractId    (required) medfabric (Python chaincode) or medfabric-node (Node baseline)
 *   invoker       (required) <user>@<domain>, e.g. doctor@hospital-a; the entry's domain is <domain>
 *   domain        (optional) the entry's domain instead
 *   resourceType  (optional) FHIR resource type, default Observation
 *   size          (optional) the entry's size field, default 2048
 *   idPrefix      (optional) first part of every record id, default "cal"
 *   mspIds        (optional) {identity: MSP id} instead of looking the MSP up in the network configuration
 *
 * Record ids are <idPrefix>-<run>-r<round>-w<worker>-<n>: never the same twice, so no
 * transaction conflicts with another (MVCC) and none finds its record already there.
 */

'use strict';

const {MedfabricWorkload, entryOptions, indexEntry} = require('./lib/common');

class IndexWrite extends MedfabricWorkload {
    get name() {
        return 'index-write';
    }

    async configure(args) {
        this.invoker = args.identity('invoker');
        this.entry = entryOptions(args, this.invoker);
        await this.useIdentity(this.invoker);
    }

    async submitTransaction() {
        const record = indexEntry(this.newId(), this.entry.domain, this.entry);
        await this.send(this.invoker, 'emr_index:PutRecord', [JSON.stringify(record)]);
    }
}

module.exports.IndexWrite = IndexWrite;
module.exports.createWorkloadModule = () => new IndexWrite();

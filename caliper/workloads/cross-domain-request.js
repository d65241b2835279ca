/*
 * cross-domain-request: the on-chain steps of SYSTEM.md section 7 (and of `medfabric emr
 * request`): a reader of another domain logs its request on the public channel
 * (access_log:LogAccess {action: "request", outcome: "success", record_id, reason}), then asks
 * for the decision (consent:CheckAccess(record_id, "read", purpose)), which must be "allow".
 * With lookup: true it first reads the published index entry (emr_index:GetRecord, evaluated),
 * as the client does.
 *
 * Setup as for grant-check: the owner publishes the records and grants them to the reader's MSP.
 * Each step is a transaction of its own for Caliper and in the records (one line each); a
 * request stops at its first failed step.
 *
 * Round arguments: as for grant-check (channel public, contractId medfabric, owner, reader,
 * purpose, records, ...), plus
 *   lookup               (optional) true to read the index entry first, default false
 */

'use strict';

const {MedfabricWorkload, expectAllow} = require('./lib/common');
const {grantedRecords} = require('./grant-check');

class CrossDomainRequest extends MedfabricWorkload {
    get name() {
        return 'cross-domain-request';
    }

    async configure(args) {
        this.lookup = args.boolean('lookup', false);
        await grantedRecords(this, args);
        this.reason = `request to ${this.entry.domain} for ${this.purpose}`;
    }

    async submitTransaction() {
        const recordId = this.recordIds[this.next++ % this.recordIds.length];
        const succeeded = (status) => status.GetStatus() === 'success';
        if (this.lookup) {
            const found = await this.send(this.reader, 'emr_index:GetRecord', [recordId], {readOnly: true});
            if (!succeeded(found)) {
                return;
            }
        }
        const entry = {action: 'request', outcome: 'success', record_id: recordId, reason: this.reason};
        const logged = await this.send(this.reader, 'access_log:LogAccess', [JSON.stringify(entry)]);
        if (!succeeded(logged)) {
            return;
        }
        await this.send(this.reader, 'consent:CheckAccess', [recordId, 'read', this.purpose], {check: expectAllow});
    }
}

module.exports.CrossDomainRequest = CrossDomainRequest;
module.exports.createWorkloadModule = () => new CrossDomainRequest();

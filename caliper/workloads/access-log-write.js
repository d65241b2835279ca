/*
 * access-log-write: access_log:LogAccess of a "request" entry per transaction, as a service logs
 * an access made off chain ({action: "request", outcome: "success", record_id, reason}).
 *
 * Round arguments:
 *   channel, contractId  (required) as for index-write (the Python chaincode: medfabric)
 *   invoker              (required) <user>@<domain>
 *   reason               (optional) the entry's reason, default "caliper benchmark request"
 *   idPrefix, mspIds     (optional) as for index-write
 *
 * The record ids named are unique per transaction (LogAccess does not require the record to
 * exist); log keys carry the transaction id, so entries never conflict.
 */

'use strict';

const {MedfabricWorkload} = require('./lib/common');

class AccessLogWrite extends MedfabricWorkload {
    get name() {
        return 'access-log-write';
    }

    async configure(args) {
        this.invoker = args.identity('invoker');
        this.reason = args.string('reason', {fallback: 'caliper benchmark request', pattern: /^(?=.*\S)[^\x00-\x1f\x7f]{1,256}$/,
            describe: '1-256 characters without control characters'});
        await this.useIdentity(this.invoker);
    }

    async submitTransaction() {
        const entry = {action: 'request', outcome: 'success', record_id: this.newId(), reason: this.reason};
        await this.send(this.invoker, 'access_log:LogAccess', [JSON.stringify(entry)]);
    }
}

module.exports.AccessLogWrite = AccessLogWrite;
module.exports.createWorkloadModule = () => new AccessLogWrite();

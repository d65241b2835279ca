/*
 * index-read: emr_index:GetRecord (evaluated, readOnly) of records this workload wrote while
 * initialising, round-robin.
 *
 * Round arguments:
 *   channel, contractId  (required) as for index-write
 *   invoker              (required) <user>@<domain>: who reads
 *   writer               (optional) <user>@<domain>: who writes the records, default the invoker
 *   records              (optional) how many records to write first, default 20 (1-1000)
 *   setupConcurrency     (optional) setup transactions in flight at once, default 5
 *   visibilityTimeout    (optional) seconds to wait until the invoker's peer has the last record, default 30
 *   domain, resourceType, size, idPrefix, mspIds (optional) as for index-write (domain: the writer's)
 *
 * A read counts as failed unless it returns the record asked for.
 */

'use strict';

const {MedfabricWorkload, entryOptions, writeRecords} = require('./lib/common');

class IndexRead extends MedfabricWorkload {
    get name() {
        return 'index-read';
    }

    async configure(args) {
        this.invoker = args.identity('invoker');
        const writer = args.identity('writer', this.invoker);
        const count = args.integer('records', {fallback: 20, min: 1, max: 1000});
        const concurrency = args.integer('setupConcurrency', {fallback: 5, min: 1, max: 100});
        const timeout = args.integer('visibilityTimeout', {fallback: 30, min: 1});
        const entry = entryOptions(args, writer);
        await this.useIdentity(this.invoker);
        await this.useIdentity(writer);
        this.recordIds = await writeRecords(this, {owner: writer, reader: this.invoker, count, concurrency, entry, timeout});
        this.next = 0;
    }

    async submitTransaction() {
        const recordId = this.recordIds[this.next++ % this.recordIds.length];
        await this.send(this.invoker, 'emr_index:GetRecord', [recordId], {
            readOnly: true,
            check: (text) => {
                try {
                    return JSON.parse(text).record_id === recordId ? null : `another record than ${recordId}`;
                } catch (error) {
                    return `not a record: ${text.slice(0, 80)}`;
                }
            },
        });
    }
}

module.exports.IndexRead = IndexRead;
module.exports.createWorkloadModule = () => new IndexRead();

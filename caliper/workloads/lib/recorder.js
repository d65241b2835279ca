/*
 * Per-transaction records for the benchmark runner.
 *
 * Caliper reports no percentiles and counts failed transactions in its throughput; the runner
 * computes both from these records instead. With MEDFABRIC_BENCH_RECORDS set to a directory,
 * every transaction a workload sends in a round is written, one JSON line each, to
 *
 *   $MEDFABRIC_BENCH_RECORDS/round-<roundIndex>-<roundLabel>-worker-<workerIndex>.jsonl
 *
 * (round-<roundIndex>-worker-<workerIndex>.jsonl when the round's label cannot be found), as
 *
 *   {"start_ms":1700000000123,"end_ms":1700000000456,"ok":true}
 *   {"start_ms":1700000000124,"end_ms":1700000000789,"ok":false,"error":"transaction failed"}
 *
 * start_ms and end_ms are the adapter's own TxStatus times (GetTimeCreate, GetTimeFinal: what
 * Caliper's latencies are made of), in epoch milliseconds; ok is true only for a TxStatus
 * "success" whose result, when the workload checks it, is what it expects. Lines come in
 * completion order; the file is written again from scratch when its round starts. Without the
 * variable nothing is recorded. Requests sent while a workload initialises are not recorded.
 */

'use strict';

const fs = require('fs');
const path = require('path');

const FLUSH_INTERVAL_MS = 500;
const FLUSH_LINES = 2000;
const RECORDS_VARIABLE = 'MEDFABRIC_BENCH_RECORDS';

const oneLine = (text) => String(text).split(/\s+/).filter(Boolean).join(' ');

/** The label of round `roundIndex` in the benchmark file Caliper was started with, or null. */
function roundLabel(roundIndex) {
    try {
        const {CaliperUtils, ConfigUtil} = require('@hyperledger/caliper-core');
        const file = ConfigUtil.get(ConfigUtil.keys.BenchConfig);
        if (!file) {
            return null;
        }
        const rounds = CaliperUtils.parseYaml(CaliperUtils.resolvePath(file)).test.rounds;
        const label = rounds[roundIndex] && rounds[roundIndex].label;
        return typeof label === 'string' && label ? label : null;
    } catch (error) {
        return null;
    }
}

/** A label as it appears in a file name: runs of anything but A-Z a-z 0-9 . _ - become one '_'. */
function fileSafe(label) {
    return label.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** The records file of a round and worker; null when MEDFABRIC_BENCH_RECORDS is unset or empty. */
function recordsFile(roundIndex, workerIndex, label = roundLabel(roundIndex), env = process.env) {
    const directory = env[RECORDS_VARIABLE];
    if (!directory) {
        return null;
    }
    const name = label
        ? `round-${roundIndex}-${fileSafe(label)}-worker-${workerIndex}.jsonl`
        : `round-${roundIndex}-worker-${workerIndex}.jsonl`;
    return path.resolve(directory, name);
}

/** Why a TxStatus is not a success, in one line. */
function failureOf(status) {
    const messages = (status.GetErrMsg && status.GetErrMsg()) || [];
    const detail = messages.filter(Boolean).map(oneLine).join('; ');
    return `transaction ${status.GetStatus()}${detail ? `: ${detail}` : ''}`;
}

/** The result of a TxStatus as text (fabric-gateway results are bytes). */
function resultText(status) {
    const result = status.GetResult();
    if (result === null || result === undefined) {
        return '';
    }
    return typeof result === 'string' ? result : Buffer.from(result).toString('utf8');
}

class Recorder {
    /**
     * @param {string|null} file where to write, null to record nothing
     */
    constructor(file) {
        this.file = file;
        this.lines = [];
        this.timer = null;
        this.onExit = () => this.flush();
        if (file) {
            fs.mkdirSync(path.dirname(file), {recursive: true});
            fs.writeFileSync(file, '');
            process.on('exit', this.onExit);
        }
    }

    /** The recorder of a workload's round (WorkloadModuleBase fields roundIndex and workerIndex). */
    static forRound(roundIndex, workerIndex) {
        return new Recorder(recordsFile(roundIndex, workerIndex));
    }

    get enabled() {
        return this.file !== null;
    }

    /**
     * Sends one request through the adapter and records it. `check(resultText)` may return a
     * reason to count a successful transaction as failed (an unexpected answer). Returns the
     * TxStatus; an error the adapter throws is recorded, then thrown again (Caliper ends the
     * round on it).
     */
    async send(sutAdapter, request, check = null) {
        const sent = Date.now();
        let status;
        try {
            status = await sutAdapter.sendRequests(request);
        } catch (error) {
            this.record(sent, Date.now(), false, oneLine((error && error.message) || error) || 'request failed');
            throw error;
        }
        const start = status.GetTimeCreate() || sent;
        const end = status.GetTimeFinal() || Date.now();
        if (status.GetStatus() !== 'success') {
            this.record(start, end, false, failureOf(status));
        } else {
            const problem = check ? check(resultText(status)) : null;
            this.record(start, end, !problem, problem ? oneLine(problem) : undefined);
        }
        return status;
    }

    record(start, end, ok, error) {
        if (!this.file) {
            return;
        }
        const line = {start_ms: start, end_ms: end, ok};
        if (!ok) {
            line.error = error || 'failed';
        }
        this.lines.push(JSON.stringify(line));
        if (this.lines.length >= FLUSH_LINES) {
            this.flush();
        } else if (!this.timer) {
            this.timer = setTimeout(() => this.flush(), FLUSH_INTERVAL_MS);
            this.timer.unref();
        }
    }

    /** Appends the buffered lines to the file. */
    flush() {
        if (this.timer) {
            clearTimeout(this.timer);
            this.timer = null;
        }
        if (this.file && this.lines.length > 0) {
            fs.appendFileSync(this.file, `${this.lines.join('\n')}\n`);
            this.lines = [];
        }
    }

    /** Flushes and stops; later records are dropped. */
    close() {
        this.flush();
        if (this.file) {
            process.removeListener('exit', this.onExit);
        }
        this.file = null;
    }
}

module.exports = {Recorder, recordsFile, roundLabel, resultText, RECORDS_VARIABLE};

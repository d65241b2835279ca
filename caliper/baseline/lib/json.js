/*
 * Strict JSON in, canonical JSON out: the JavaScript twin of
 * chaincode/medfabric_chaincode/runtime/canonical.py.
 *
 * parse() reads a document as the Python runtime's parse_json does (CPython's json module with
 * a duplicate-key hook and no NaN/Infinity), and fails with the same messages, positions
 * included ("Expecting value: line 1 column 2 (char 1)"), so that the baseline chaincode refuses
 * malformed input with the same text. Values come back as:
 *   object -> Map (insertion order; never a plain object, so "__proto__" is just a key)
 *   integer literal -> BigInt (Python keeps integers exact), other numbers -> Number
 *   string, true, false, null, array -> themselves
 *
 * canonical() writes what Python's json.dumps(sort_keys=True, separators=(",", ":"),
 * ensure_ascii=False) writes for these values: keys sorted by code point, no spaces, only '"',
 * '\\' and control characters escaped.
 */

'use strict';

/** What Python's parse_json raises: a ValueError whose text the contract puts after "not valid JSON: ". */
class JsonError extends Error {}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const MAX_INT_DIGITS = 4300; // CPython's default int_max_str_digits
const SIMPLE_ESCAPES = {'"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t'};
const HEX = /^[0-9a-fA-F]$/;

const isDigit = (char) => char !== undefined && char >= '0' && char <= '9';

/** A decode error as json.JSONDecodeError words it; `pos` counts code points. */
function decodeError(message, chars, pos) {
    let line = 1;
    let lastNewline = -1;
    for (let index = 0; index < pos; index++) {
        if (chars[index] === '\n') {
            line += 1;
            lastNewline = index;
        }
    }
    return new JsonError(`${message}: line ${line} column ${pos - lastNewline} (char ${pos})`);
}

/** Thrown where CPython's scanner raises StopIteration: the caller says "Expecting value" at `pos`. */
class NoValue {
    constructor(pos) {
        this.pos = pos;
    }
}

class Scanner {
    constructor(text) {
        this.chars = Array.from(text); // code points, as Python indexes a str
        this.length = this.chars.length;
    }

    skipWhitespace(pos) {
        while (pos < this.length && WHITESPACE.has(this.chars[pos])) {
            pos++;
        }
        return pos;
    }

    /** The value starting at `pos`: [value, end]; throws NoValue when none starts there. */
    value(pos) {
        const chars = this.chars;
        if (pos >= this.length) {
            throw new NoValue(pos);
        }
        const char = chars[pos];
        if (char === '"') {
            return this.string(pos + 1);
        }
        if (char === '{') {
            return this.object(pos + 1);
        }
        if (char === '[') {
            return this.array(pos + 1);
        }
        const word = (text) => chars.slice(pos, pos + text.length).join('') === text;
        if (char === 'n' && word('null')) {
            return [null, pos + 4];
        }
        if (char === 't' && word('true')) {
            return [true, pos + 4];
        }
        if (char === 'f' && word('false')) {
            return [false, pos + 5];
        }
        for (const constant of ['NaN', 'Infinity', '-Infinity']) {
            if (word(constant)) {
                throw new JsonError(`${constant} is not a JSON number`);
            }
        }
        return this.number(pos);
    }

    number(start) {
        const chars = this.chars;
        let pos = start;
        if (chars[pos] === '-') {
            pos++;
        }
        if (chars[pos] === '0') {
            pos++;
        } else if (isDigit(chars[pos])) {
            while (isDigit(chars[pos])) {
                pos++;
            }
        } else {
            throw new NoValue(start);
        }
        let integer = true;
        if (chars[pos] === '.' && isDigit(chars[pos + 1])) {
            integer = false;
            pos += 2;
            while (isDigit(chars[pos])) {
                pos++;
            }
        }
        if (chars[pos] === 'e' || chars[pos] === 'E') {
            let exponent = pos + 1;
            if (chars[exponent] === '+' || chars[exponent] === '-') {
                exponent++;
            }
            if (isDigit(chars[exponent])) {
                integer = false;
                pos = exponent;
                while (isDigit(chars[pos])) {
                    pos++;
                }
            }
        }
        const literal = chars.slice(start, pos).join('');
        if (!integer) {
            return [Number(literal), pos];
        }
        const digits = literal.replace('-', '').length;
        if (digits > MAX_INT_DIGITS) {
            throw new JsonError(`Exceeds the limit (${MAX_INT_DIGITS} digits) for integer string conversion: `
                + `value has ${digits} digits; use sys.set_int_max_str_digits() to increase the limit`);
        }
        return [BigInt(literal), pos];
    }

    /** A string whose opening quote is at `begin - 1`. */
    string(begin) {
        const chars = this.chars;
        const length = this.length;
        const quote = begin - 1;
        let pos = begin;
        let out = '';
        for (;;) {
            let next = pos;
            while (next < length && chars[next] !== '"' && chars[next] !== '\\') {
                if (chars[next].codePointAt(0) <= 0x1f) {
                    throw decodeError('Invalid control character at', chars, next);
                }
                next++;
            }
            out += chars.slice(pos, next).join('');
            if (next >= length) {
                throw decodeError('Unterminated string starting at', chars, quote);
            }
            if (chars[next] === '"') {
                return [out, next + 1];
            }
            next++; // the backslash
            if (next >= length) {
                throw decodeError('Unterminated string starting at', chars, quote);
            }
            const escape = chars[next];
            if (escape !== 'u') {
                if (!Object.prototype.hasOwnProperty.call(SIMPLE_ESCAPES, escape)) {
                    throw decodeError('Invalid \\escape', chars, next - 1);
                }
                out += SIMPLE_ESCAPES[escape];
                pos = next + 1;
                continue;
            }
            let end = next + 5; // after the four hex digits
            if (end >= length) {
                throw decodeError('Invalid \\uXXXX escape', chars, next);
            }
            let code = this.hex(next + 1, end);
            if (code === null) {
                throw decodeError('Invalid \\uXXXX escape', chars, end - 5);
            }
            if (code >= 0xd800 && code <= 0xdbff && end + 6 < length
                && chars[end] === '\\' && chars[end + 1] === 'u') {
                const low = this.hex(end + 2, end + 6);
                if (low === null) {
                    throw decodeError('Invalid \\uXXXX escape', chars, end + 1);
                }
                if (low >= 0xdc00 && low <= 0xdfff) {
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                    end += 6;
                }
            }
            out += String.fromCodePoint(code);
            pos = end;
        }
    }

    hex(start, end) {
        let code = 0;
        for (let index = start; index < end; index++) {
            if (!HEX.test(this.chars[index] || '')) {
                return null;
            }
            code = code * 16 + parseInt(this.chars[index], 16);
        }
        return code;
    }

    object(start) {
        const chars = this.chars;
        const pairs = [];
        let pos = this.skipWhitespace(start);
        if (chars[pos] !== '}') {
            for (;;) {
                if (chars[pos] !== '"') {
                    throw decodeError('Expecting property name enclosed in double quotes', chars, pos);
                }
                let key;
                [key, pos] = this.string(pos + 1);
                pos = this.skipWhitespace(pos);
                if (chars[pos] !== ':') {
                    throw decodeError('Expecting \':\' delimiter', chars, pos);
                }
                pos = this.skipWhitespace(pos + 1);
                let value;
                [value, pos] = this.nested(pos);
                pairs.push([key, value]);
                pos = this.skipWhitespace(pos);
                if (chars[pos] === '}') {
                    break;
                }
                if (chars[pos] !== ',') {
                    throw decodeError('Expecting \',\' delimiter', chars, pos);
                }
                pos = this.skipWhitespace(pos + 1);
            }
        }
        const object = new Map();
        for (const [key, value] of pairs) {
            if (object.has(key)) {
                throw new JsonError(`key '${key}' appears twice`);
            }
            object.set(key, value);
        }
        return [object, pos + 1];
    }

    array(start) {
        const chars = this.chars;
        const items = [];
        let pos = this.skipWhitespace(start);
        if (chars[pos] !== ']') {
            for (;;) {
                let value;
                [value, pos] = this.nested(pos);
                items.push(value);
                pos = this.skipWhitespace(pos);
                if (chars[pos] === ']') {
                    break;
                }
                if (chars[pos] !== ',') {
                    throw decodeError('Expecting \',\' delimiter', chars, pos);
                }
                pos = this.skipWhitespace(pos + 1);
            }
        }
        return [items, pos + 1];
    }

    /** A value inside an object or array: a missing one is "Expecting value" where it should start. */
    nested(pos) {
        try {
            return this.value(pos);
        } catch (error) {
            if (error instanceof NoValue) {
                throw decodeError('Expecting value', this.chars, error.pos);
            }
            throw error;
        }
    }
}

const MAX_DEPTH = 64; // nesting levels of arrays and objects a document may have (as the Python runtime)

/** The value of a JSON text; JsonError (with Python's message) when it is not one, also when it nests deeper
 * than MAX_DEPTH or holds a lone surrogate escape such as \\ud800. */
function parse(text) {
    const scanner = new Scanner(text);
    if (scanner.chars[0] === '\ufeff') {
        throw decodeError('Unexpected UTF-8 BOM (decode using utf-8-sig)', scanner.chars, 0);
    }
    let value, end;
    try {
        [value, end] = scanner.nested(scanner.skipWhitespace(0));
    } catch (error) {
        if (error instanceof RangeError) {
            throw new JsonError(`nested deeper than ${MAX_DEPTH} levels`);
        }
        throw error;
    }
    const rest = scanner.skipWhitespace(end);
    if (rest !== scanner.length) {
        throw decodeError('Extra data', scanner.chars, rest);
    }
    checkTree(value);
    return value;
}

/** Depth and Unicode of every node, visited in the Python runtime's order (its message names the first). */
function checkTree(document) {
    const pending = [[document, 0]];
    while (pending.length > 0) {
        const [value, depth] = pending.pop();
        if (typeof value === 'string') {
            checkText(value);
        } else if (value instanceof Map || Array.isArray(value)) {
            if (depth >= MAX_DEPTH) {
                throw new JsonError(`nested deeper than ${MAX_DEPTH} levels`);
            }
            for (const [key, item] of value instanceof Map ? value : value.entries()) {
                if (typeof key === 'string') {
                    checkText(key);
                }
                pending.push([item, depth + 1]);
            }
        }
    }
}

function checkText(text) {
    if (!SURROGATE.test(text)) {
        return;
    }
    for (const character of text) {
        const code = character.codePointAt(0);
        if (code >= 0xd800 && code <= 0xdfff) {
            throw new JsonError(`a string holds a lone surrogate (\\u${code.toString(16).padStart(4, '0')}): `
                + 'not valid Unicode');
        }
    }
}

const SURROGATE = /[\ud800-\udfff]/;

/** Compares two strings by code point, as Python sorts str (JavaScript's < compares UTF-16 units). */
function byCodePoint(left, right) {
    if (!SURROGATE.test(left) && !SURROGATE.test(right)) { // the same order without surrogates
        return left < right ? -1 : left > right ? 1 : 0;
    }
    const a = Array.from(left);
    const b = Array.from(right);
    for (let index = 0; index < Math.min(a.length, b.length); index++) {
        const difference = a[index].codePointAt(0) - b[index].codePointAt(0);
        if (difference !== 0) {
            return difference;
        }
    }
    return a.length - b.length;
}

const STRING_ESCAPES = {'"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t'};

function quote(text) {
    return `"${text.replace(/[\u0000-\u001f"\\]/g, (char) =>
        STRING_ESCAPES[char] || `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/**
 * Canonical JSON text of a value: null, booleans, strings, BigInt and integer Numbers, arrays,
 * Maps and plain objects (own enumerable keys). Anything else is a bug: TypeError.
 */
function canonical(value) {
    if (value === null) {
        return 'null';
    }
    switch (typeof value) {
        case 'boolean':
            return value ? 'true' : 'false';
        case 'string':
            return quote(value);
        case 'bigint':
            return value.toString();
        case 'number':
            if (!Number.isSafeInteger(value)) {
                throw new TypeError(`${value} has no canonical JSON form here (integers only)`);
            }
            return String(value);
        case 'object': {
            if (Array.isArray(value)) {
                return `[${value.map(canonical).join(',')}]`;
            }
            const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
            entries.sort(([left], [right]) => byCodePoint(left, right));
            return `{${entries.map(([key, item]) => `${quote(key)}:${canonical(item)}`).join(',')}}`;
        }
        default:
            throw new TypeError(`a ${typeof value} has no canonical JSON form`);
    }
}

/** UTF-8 bytes of the canonical JSON of a value. */
function canonicalBytes(value) {
    return Buffer.from(canonical(value), 'utf8');
}

module.exports = {JsonError, parse, canonical, canonicalBytes, byCodePoint};

/*
 * The caller as medfabric_chaincode.runtime.identity.ClientIdentity sees it: MSP id, the id
 * `x509::<subject>::<issuer>` with both DNs written as Go's cid package writes them (what Fabric's
 * Go and our Python runtime put in an access-log entry; fabric-shim's own getID() writes
 * "/C=US/O=..." instead), and the Fabric CA attributes of the certificate.
 *
 * The certificate is read with Node's crypto (PEM -> DER) and a small DER walker for the names
 * and the attribute extension.
 */

'use strict';

const {X509Certificate} = require('crypto');

class IdentityError extends Error {}

const FABRIC_ATTRIBUTE_OID = '1.2.3.4.5.6.7.8.1';

// The attributes Go's pkix.Name keeps, in the order Name.ToRDNSequence writes them.
const GO_DN_ATTRIBUTES = [
    ['2.5.4.6', 'C'],
    ['2.5.4.8', 'ST'],
    ['2.5.4.7', 'L'],
    ['2.5.4.9', 'STREET'],
    ['2.5.4.17', 'POSTALCODE'],
    ['2.5.4.10', 'O'],
    ['2.5.4.11', 'OU'],
    ['2.5.4.3', 'CN'],
    ['2.5.4.5', 'SERIALNUMBER'],
];
const SINGLE_VALUED = new Set(['2.5.4.3', '2.5.4.5']); // pkix.Name keeps only the last of these
const ESCAPED = new Set([',', '+', '"', '\\', '<', '>', ';']);

// DER ----------------------------------------------------------------------------------------------

function element(der, pos) {
    if (pos + 2 > der.length) {
        throw new IdentityError('truncated DER');
    }
    const tag = der[pos];
    let length = der[pos + 1];
    let start = pos + 2;
    if (length & 0x80) {
        const bytes = length & 0x7f;
        if (bytes === 0 || bytes > 4) {
            throw new IdentityError('unsupported DER length');
        }
        length = 0;
        for (let index = 0; index < bytes; index++) {
            length = length * 256 + der[start + index];
        }
        start += bytes;
    }
    if (start + length > der.length) {
        throw new IdentityError('truncated DER');
    }
    return {tag, start, end: start + length};
}

function children(der, parent) {
    const items = [];
    for (let pos = parent.start; pos < parent.end;) {
        const item = element(der, pos);
        items.push(item);
        pos = item.end;
    }
    return items;
}

function objectIdentifier(der, item) {
    const bytes = der.subarray(item.start, item.end);
    const arcs = [];
    let value = 0;
    for (const byte of bytes) {
        value = value * 128 + (byte & 0x7f);
        if (!(byte & 0x80)) {
            arcs.push(value);
            value = 0;
        }
    }
    if (arcs.length === 0) {
        return '';
    }
    const first = arcs[0] < 40 ? 0 : arcs[0] < 80 ? 1 : 2;
    return [first, arcs[0] - first * 40, ...arcs.slice(1)].join('.');
}

/** The text of a directory string, or null for a value that is not one. */
function directoryString(der, item) {
    const bytes = der.subarray(item.start, item.end);
    switch (item.tag) {
        case 0x0c: // UTF8String
            return new TextDecoder('utf-8').decode(bytes);
        case 0x12: // NumericString
        case 0x13: // PrintableString
        case 0x16: // IA5String
        case 0x1a: // VisibleString
        case 0x14: // TeletexString
            return Buffer.from(bytes).toString('latin1');
        case 0x1e: { // BMPString, UTF-16BE
            const swapped = Buffer.from(bytes);
            swapped.swap16();
            return swapped.toString('utf16le');
        }
        case 0x1c: { // UniversalString, UTF-32BE
            let text = '';
            for (let index = 0; index + 4 <= bytes.length; index += 4) {
                text += String.fromCodePoint(Buffer.from(bytes).readUInt32BE(index));
            }
            return text;
        }
        default:
            return null;
    }
}

/** [[oid, text], ...] of a Name, every attribute of every RDN in order. */
function nameAttributes(der, name) {
    const attributes = [];
    for (const rdn of children(der, name)) {
        for (const typeAndValue of children(der, rdn)) {
            const [type, value] = children(der, typeAndValue);
            const text = directoryString(der, value);
            if (text !== null) {
                attributes.push([objectIdentifier(der, type), text]);
            }
        }
    }
    return attributes;
}

// Go's distinguished names ------------------------------------------------------------------------

function escape(value) {
    const chars = Array.from(value);
    return chars.map((char, index) => {
        const atEdge = (index === 0 && (char === ' ' || char === '#')) || (index === chars.length - 1 && char === ' ');
        return atEdge || ESCAPED.has(char) ? `\\${char}` : char;
    }).join('');
}

/** The DN as Go's cid package writes it: last RDN first, repeated attribute types joined with '+'. */
function goDistinguishedName(attributes) {
    const rdns = [];
    for (const [oid, label] of GO_DN_ATTRIBUTES) {
        let values = attributes.filter(([type]) => type === oid).map(([, text]) => text);
        if (SINGLE_VALUED.has(oid)) {
            values = values.slice(-1);
        }
        if (values.length > 0) {
            rdns.push(values.map((text) => `${label}=${escape(text)}`).join('+'));
        }
    }
    return rdns.reverse().join(',');
}

// The identity -------------------------------------------------------------------------------------

function fabricCaAttributes(der, extensions) {
    let value = null;
    for (const extension of extensions) {
        const parts = children(der, extension);
        if (objectIdentifier(der, parts[0]) === FABRIC_ATTRIBUTE_OID) {
            const octets = parts[parts.length - 1];
            value = der.subarray(octets.start, octets.end);
        }
    }
    if (value === null) {
        return {};
    }
    let attributes;
    try {
        const document = JSON.parse(Buffer.from(value).toString('utf8'));
        if (document === null || typeof document !== 'object' || Array.isArray(document)) {
            throw new TypeError('not an object');
        }
        attributes = document.attrs;
        const empty = !attributes || (typeof attributes === 'object' && Object.keys(attributes).length === 0);
        attributes = empty ? {} : attributes;
    } catch (error) {
        attributes = null;
    }
    const valid = attributes !== null && typeof attributes === 'object' && !Array.isArray(attributes)
        && Object.values(attributes).every((item) => typeof item === 'string');
    if (!valid) {
        throw new IdentityError('the creator\'s certificate has a malformed Fabric CA attribute extension');
    }
    return attributes;
}

/** The creator of the transaction: {mspId, id, attribute(name)}. IdentityError when it is not X.509. */
function callerOf(stub) {
    const creator = stub.getCreator();
    let der;
    try {
        der = new X509Certificate(Buffer.from(creator.idBytes)).raw;
    } catch (error) {
        throw new IdentityError('the transaction creator is not an X.509 identity');
    }
    const certificate = element(der, 0);
    const tbsFields = children(der, children(der, certificate)[0]);
    const first = tbsFields[0].tag === 0xa0 ? 1 : 0; // [0] version, when present
    const issuer = tbsFields[first + 2];
    const subject = tbsFields[first + 4];
    const wrapped = tbsFields.slice(first + 6).find((item) => item.tag === 0xa3); // [3] extensions
    const extensions = wrapped ? children(der, children(der, wrapped)[0]) : [];
    const attributes = fabricCaAttributes(der, extensions);
    const subjectDn = goDistinguishedName(nameAttributes(der, subject));
    const issuerDn = goDistinguishedName(nameAttributes(der, issuer));
    return {
        mspId: creator.mspid,
        id: `x509::${subjectDn}::${issuerDn}`,
        attribute: (name) => (Object.prototype.hasOwnProperty.call(attributes, name) ? attributes[name] : null),
    };
}

module.exports = {IdentityError, callerOf, goDistinguishedName};

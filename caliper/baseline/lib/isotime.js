/*
 * isZonedTime: the JavaScript twin of medfabric_chaincode.contracts.common.is_zoned_time,
 * i.e. "CPython 3.11's datetime.fromisoformat() accepts the text, the result has a time zone,
 * and converting it to UTC stays within years 1..9999".
 *
 * fromisoformat accepts far more than RFC 3339 (basic and extended forms, ISO week dates, any
 * single character between date and time, hour-only times, ',' before fractions, offsets with
 * seconds...), and a grant's "expires" is stored as given: so the baseline must accept exactly
 * the same texts. The grammar below follows CPython's C implementation as observed (the date
 * and the separator are read as characters, the time as UTF-8 bytes);
 * tests/conformance/test_baseline_chaincode.py compares the two on a corpus of texts.
 */

'use strict';

const NUL = '\0';
const isDigit = (char) => char >= '0' && char <= '9';

/** `count` ASCII digits at chars[pos...]: [value, next] or null. */
function digits(chars, pos, count) {
    let value = 0;
    for (let index = 0; index < count; index++) {
        const char = chars[pos + index];
        if (!isDigit(char)) {
            return null;
        }
        value = value * 10 + (char.charCodeAt(0) - 48);
    }
    return [value, pos + count];
}

/** Where the date ends and the separator is; -1 when it cannot be told. */
function separatorAt(chars) {
    const length = chars.length - 1; // without the terminating NUL
    if (length === 7) {
        return 7;
    }
    if (chars[4] === '-') {
        if (chars[5] !== 'W') {
            return 10; // YYYY-MM-DD
        }
        if (length < 8) {
            return -1;
        }
        if (length > 8 && chars[8] === '-') { // YYYY-Www-D, or YYYY-Www then a '-' separator
            if (length === 9) {
                return -1;
            }
            return length > 10 && isDigit(chars[10]) ? 8 : 10;
        }
        return 8; // YYYY-Www
    }
    if (chars[4] === 'W') { // YYYYWww or YYYYWwwD
        let index = 7;
        while (index < length && isDigit(chars[index])) {
            index++;
        }
        if (index < 9) {
            return index;
        }
        return index % 2 === 0 ? 7 : 8;
    }
    return 8; // YYYYMMDD
}

// Days since 0000-03-01 style civil calendar arithmetic (proleptic Gregorian), for week dates.
function daysFromCivil(year, month, day) {
    const y = month <= 2 ? year - 1 : year;
    const era = Math.floor(y / 400);
    const yearOfEra = y - era * 400;
    const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
    const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
    return era * 146097 + dayOfEra - 719468; // 0 = 1970-01-01
}

function civilFromDays(days) {
    const z = days + 719468;
    const era = Math.floor(z / 146097);
    const dayOfEra = z - era * 146097;
    const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524)
        - Math.floor(dayOfEra / 146096)) / 365);
    const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
    const mp = Math.floor((5 * dayOfYear + 2) / 153);
    const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
    const month = mp < 10 ? mp + 3 : mp - 9;
    return [yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

const isLeap = (year) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
const weekday = (days) => ((days % 7) + 7 + 3) % 7; // 0 = Monday (1970-01-01 was a Thursday)

/** [year, month, day] of an ISO week date; null when the week or day is out of range. */
function fromIsoWeek(isoYear, week, day) {
    const january1 = daysFromCivil(isoYear, 1, 1);
    const firstWeekday = weekday(january1);
    if (week <= 0 || week >= 53) {
        const longYear = firstWeekday === 3 || (firstWeekday === 2 && isLeap(isoYear));
        if (!(week === 53 && longYear)) {
            return null;
        }
    }
    if (day <= 0 || day >= 8) {
        return null;
    }
    let week1Monday = january1 - firstWeekday;
    if (firstWeekday > 3) {
        week1Monday += 7;
    }
    return civilFromDays(week1Monday + (week - 1) * 7 + day - 1);
}

/** The date in chars[0, length): [year, month, day] (not yet range-checked) or null. */
function parseDate(chars, length) {
    let parsed = digits(chars, 0, 4);
    if (!parsed) {
        return null;
    }
    let [year, pos] = parsed;
    const dashes = chars[pos] === '-';
    if (dashes) {
        pos++;
    }
    if (chars[pos] === 'W') {
        parsed = digits(chars, pos + 1, 2);
        if (!parsed) {
            return null;
        }
        let week;
        [week, pos] = parsed;
        let day = 1;
        if (pos < length) {
            if (dashes && chars[pos++] !== '-') {
                return null;
            }
            parsed = digits(chars, pos, 1);
            if (!parsed) {
                return null;
            }
            day = parsed[0];
        }
        return fromIsoWeek(year, week, day);
    }
    parsed = digits(chars, pos, 2);
    if (!parsed) {
        return null;
    }
    let month;
    [month, pos] = parsed;
    if (dashes && chars[pos++] !== '-') {
        return null;
    }
    parsed = digits(chars, pos, 2);
    return parsed ? [year, month, parsed[0]] : null;
}

/**
 * HH[:?MM[:?SS[{.,}ffffff]]] from chars[start] to chars[end]: {values: [h, m, s, us], more} where
 * `more` says the text goes on after what was read; null when it is malformed.
 */
function parseClock(chars, start, end) {
    const values = [0, 0, 0, 0];
    let pos = start;
    let colons = true;
    for (let index = 0; index < 3; index++) {
        const parsed = digits(chars, pos, 2);
        if (!parsed) {
            return null;
        }
        [values[index], pos] = parsed;
        const char = chars[pos++];
        if (index === 0) {
            colons = char === ':';
        }
        if (pos >= end) {
            return {values, more: char !== NUL};
        }
        if (colons && char === ':') {
            continue;
        }
        if (char === '.' || char === ',') {
            break;
        }
        if (!colons) {
            pos--;
        } else {
            return null;
        }
    }
    // After three components the fraction is read from where the loop stopped, as CPython does.
    const remaining = end - pos;
    const count = Math.min(remaining, 6);
    const parsed = digits(chars, pos, count);
    if (!parsed) {
        return null;
    }
    pos = parsed[1];
    values[3] = count > 0 ? parsed[0] * 10 ** (6 - count) : 0;
    while (isDigit(chars[pos])) {
        pos++;
    }
    return {values, more: chars[pos] !== NUL};
}

/** The time after the separator: {clock, offset (microseconds east of UTC, or null)} or null. */
function parseTime(chars, start) {
    const end = chars.length - 1;
    let zone = start;
    do {
        if (chars[zone] === 'Z' || chars[zone] === '+' || chars[zone] === '-') {
            break;
        }
    } while (++zone < end);
    const clock = parseClock(chars, start, zone);
    if (!clock) {
        return null;
    }
    if (zone >= end) {
        return clock.more ? null : {clock: clock.values, offset: null};
    }
    if (chars[zone] === 'Z') {
        return chars[zone + 1] === NUL ? {clock: clock.values, offset: 0} : null;
    }
    const sign = chars[zone] === '-' ? -1 : 1;
    const zoneClock = parseClock(chars, zone + 1, end);
    if (!zoneClock || zoneClock.more) {
        return null;
    }
    const [hours, minutes, seconds, micros] = zoneClock.values;
    const wholeSeconds = hours * 3600 + minutes * 60 + seconds;
    // CPython takes an offset of 0 whole seconds as UTC, whatever its microseconds.
    return {clock: clock.values, offset: wholeSeconds === 0 ? 0 : sign * (wholeSeconds * 1e6 + micros)};
}

const DAY_MICROS = 86400 * 1e6;
const MIN_DAYS = daysFromCivil(1, 1, 1);
const MAX_DAYS = daysFromCivil(9999, 12, 31);

function daysInMonth(year, month) {
    return [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

/** True when CPython 3.11's datetime.fromisoformat(text) has a time zone and converts to UTC. */
function isZonedTime(text) {
    if (typeof text !== 'string') {
        return false;
    }
    const chars = Array.from(text);
    if (chars.length < 7) {
        return false;
    }
    chars.push(NUL);
    const separator = separatorAt(chars);
    if (separator < 0) {
        return false;
    }
    // A lone surrogate cannot be written in UTF-8: CPython refuses one anywhere but the separator.
    if (chars.some((char, index) => index !== separator && /^[\ud800-\udfff]$/.test(char))) {
        return false;
    }
    const date = parseDate(chars, separator);
    if (!date || chars.length - 1 <= separator) {
        return false; // invalid, or a date without a time: no time zone
    }
    // CPython reads the time as UTF-8 bytes: a non-ASCII character there takes several positions.
    const timeBytes = Buffer.from(chars.slice(separator + 1, -1).join(''), 'utf8');
    const timeChars = Array.from(timeBytes, (byte) => (byte < 0x80 ? String.fromCharCode(byte) : '\x80'));
    timeChars.push(NUL);
    const time = parseTime(timeChars, 0);
    if (!time || time.offset === null) {
        return false;
    }
    const [year, month, day] = date;
    const [hour, minute, second, micros] = time.clock;
    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)
        || hour > 23 || minute > 59 || second > 59) {
        return false;
    }
    if (Math.abs(time.offset) >= DAY_MICROS) {
        return false; // timezone(): the offset must be strictly within a day
    }
    // Days and microseconds apart: days * DAY_MICROS would pass Number.MAX_SAFE_INTEGER.
    const utcMicrosOfDay = ((hour * 60 + minute) * 60 + second) * 1e6 + micros - time.offset;
    const utcDays = daysFromCivil(year, month, day) + Math.floor(utcMicrosOfDay / DAY_MICROS);
    return utcDays >= MIN_DAYS && utcDays <= MAX_DAYS;
}

module.exports = {isZonedTime};

/*
 * crc32c.c -- CRC-32C through Intel's ISA-L (Debian libisal), which uses the SSE4.2
 * crc32 instruction and PCLMULQDQ folding: it runs at memory speed, so checking every
 * batch on read and on recovery costs little. ISA-L's crc32_iscsi() is the raw
 * reflected CRC without the final inversion, and takes an int length: we invert on the
 * way in and out (giving the standard CRC-32C, check value 0xE3069283 for "123456789")
 * and feed it at most 1 GiB at a time.
 */
#include "crc32c.h"

#include <isa-l/crc.h>

uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = p;
    uint32_t c = ~crc;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        c = crc32_iscsi((unsigned char *)b, (int)chunk, c);
        b += chunk;
        n -= chunk;
    }
    return ~c;
}

uint32_t crc32c(const void *p, size_t n) { return crc32c_extend(0, p, n); }

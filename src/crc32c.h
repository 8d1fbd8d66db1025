/*
 * crc32c.h -- CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2.
 */
#ifndef ALOG_CRC32C_H
#define ALOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of p[0..n). */
uint32_t crc32c(const void *p, size_t n);
/* Continues crc (a previous crc32c() result) over p[0..n). crc32c_extend(0, p, n) ==
 * crc32c(p, n). */
uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n);

#endif

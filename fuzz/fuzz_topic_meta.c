/*
 * fuzz_topic_meta.c -- libFuzzer target for the parser of alogd's topic metadata files
 * (src/server/topic_meta.c): DATA/<topic>.topic is read at every start, and a damaged,
 * truncated or foreign file must give a clear reason, never a crash, an out-of-bounds
 * read or a topic with impossible settings.
 *
 * Checks, for any bytes (as alogd reads them: up to 64 KiB, NUL-terminated):
 *   1. topic_meta_parse either fails with a non-empty reason or gives metadata within
 *      bounds: 1..TOPIC_PARTITIONS_MAX partitions, only known configs set.
 *   2. What it accepted formats to a file (topic_meta_format) that parses again to
 *      the very same metadata (the file alogd would write for it is understood).
 *   3. The bytes as a CreateTopics config (split at the first '=' into name and value)
 *      go through topic_config_set: KERR_NONE or KERR_INVALID_CONFIG with a message.
 * The seed corpus (fuzz/corpus/fuzz_topic_meta/) holds files alogd wrote in
 * tests/cli/test_alogd_topics.sh and damaged variants of them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_msgs.h"
#include "topic_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_topic_meta: %s:%d: check failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                                   \
            abort();                                                                    \
        }                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    topic_meta m, m2;
    char why[512] = "";
    if (topic_meta_parse(text, &m, why, sizeof why) != 0) {
        CHECK(why[0] != '\0');
    } else {
        CHECK(m.partitions >= 1 && m.partitions <= TOPIC_PARTITIONS_MAX);
        CHECK((m.set >> CFG_N) == 0);
        char out[8192];
        int len = topic_meta_format(&m, out, sizeof out);
        CHECK(len > 0);
        why[0] = '\0';
        CHECK(topic_meta_parse(out, &m2, why, sizeof why) == 0);
        CHECK(memcmp(&m, &m2, sizeof m) == 0);
    }

    const char *eq = memchr(data, '=', size);
    size_t nlen = eq ? (size_t)(eq - (const char *)data) : size;
    const char *value = eq ? eq + 1 : NULL;
    size_t vlen = eq ? size - nlen - 1 : 0;
    topic_meta c;
    memset(&c, 0, sizeof c);
    char msg[512] = "";
    int16_t e = topic_config_set(&c, (const char *)data, nlen, value, vlen, msg, sizeof msg);
    CHECK(e == KERR_NONE || (e == KERR_INVALID_CONFIG && msg[0] != '\0'));
    CHECK(e != KERR_NONE || c.set != 0);
    free(text);
    return 0;
}

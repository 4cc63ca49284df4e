/* Named 64-bit counters shown by `imgwctl status`. */
#ifndef IMGW_CORE_COUNTERS_H
#define IMGW_CORE_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

struct counter {
	char *name;
	int64_t value;
};

struct counters {
	struct counter *v;
	size_t n;
};

/* Add `delta` to counter `name` (created at 0 on first use, name copied). */
void counters_add(struct counters *c, const char *name, int64_t delta);
int64_t counters_get(const struct counters *c, const char *name);
void counters_free(struct counters *c);

#endif

/* Named counters: few per owner, so a small array searched linearly. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "util.h"

void
counters_add(struct counters *c, const char *name, int64_t delta)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (strcmp(c->v[i].name, name) == 0) {
			c->v[i].value += delta;
			return;
		}
	}
	c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
	c->v[c->n].name = xstrdup(name);
	c->v[c->n].value = delta;
	c->n++;
}

int64_t
counters_get(const struct counters *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i].name, name) == 0)
			return c->v[i].value;
	return 0;
}

void
counters_free(struct counters *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

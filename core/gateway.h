/*
 * The gateway: the configuration turned into running instances, reloads,
 * status and orderly shutdown.  One per imgwd process.
 */
#ifndef IMGW_CORE_GATEWAY_H
#define IMGW_CORE_GATEWAY_H

#include <stddef.h>

struct event_base;
struct evbuffer;
struct conf;
struct gateway;

/* Check a configuration file completely (syntax, connectors, options)
 * without running anything: 0, or -1 with "FILE:LINE: message" in err. */
int gateway_check(const char *path, char *err, size_t errlen);

/*
 * Build and start the gateway from `conf` (taken over) read from `path`,
 * with its control socket.
 * A connector that cannot be loaded is reported and its community stays
 * down; options that do not validate are an error: NULL with err set.
 */
struct gateway *gateway_new(struct event_base *base, const char *path,
    struct conf *conf, char *err, size_t errlen);

/*
 * Re-read the configuration.  Invalid: nothing changes, -1 with the reason
 * in err.  Valid: untouched communities keep running, changed ones restart
 * with their queue kept, removed ones drain and unload, new ones start;
 * 0 with warnings (or "") in err.  A community whose connector cannot be
 * loaded keeps running its previous connector (a new one stays down).
 */
int gateway_reload(struct gateway *gw, char *err, size_t errlen);

/* Begin an orderly stop: refuse new work, drain queues (bounded wait),
 * stop connectors, then leave the event loop. */
void gateway_shutdown(struct gateway *gw);

/* Status text (or JSON) for imgwctl. */
int gateway_status(struct gateway *gw, int json, struct evbuffer *out);

void gateway_free(struct gateway *gw);

#endif

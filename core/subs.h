/*
 * Presence subscriptions kept in the store (imgw_subscription), for the
 * host functions sub_put, sub_del and sub_list of connector ABI 1.1.  All
 * database work runs as store jobs; this side runs on the loop.
 */
#ifndef IMGW_CORE_SUBS_H
#define IMGW_CORE_SUBS_H

#include <stdint.h>

#include <imgw/connector.h>

struct store;
struct subs;

/* Subscriptions in `store` (borrowed, must outlive the subs: free the
 * subs after store_free). */
struct subs *subs_new(struct store *store, const char *node);
void subs_free(struct subs *s);
void subs_set_node(struct subs *s, const char *node);

/* The gateway's subs, for the host table (one gateway per process);
 * NULL: no store. */
void subs_attach(struct subs *s);
struct subs *subs_current(void);

/* The host functions (connector.h documents them); 0 or -1. */
int subs_put(struct subs *s, const char *community, const struct imgw_sub *sub);
int subs_del(struct subs *s, const char *community, const char *watcher,
    const char *presentity);
int subs_list(struct subs *s, struct imgw_instance *inst, const char *community,
    void (*cb)(void *arg, const struct imgw_sub *sub), void *arg);

/* The connector of `inst` stops: no list callback reaches it any more. */
void subs_cancel(struct subs *s, struct imgw_instance *inst);

struct subs_status {
	uint64_t puts, dels, lists, failed;
};
void subs_get_status(struct subs *s, struct subs_status *st);

#endif

/*
 * Presence damping and loop stopping.
 *
 * - A presence identical to the last one forwarded for the same sender and
 *   target is not forwarded again (a probe through the router resets the
 *   answer's pair, so probes are always answered).
 * - Presence per sender/target pair is limited to `rate` per `window`
 *   seconds; an excess presence is held and coalesced: the latest one is
 *   forwarded when the window allows, so the target ends up right.
 * - Presence and subscription events that go back and forth between the
 *   same two addresses more than `loop_limit` times in `loop_window`
 *   seconds are stopped until the pair is quiet for a window.
 */
#ifndef IMGW_CORE_DAMPING_H
#define IMGW_CORE_DAMPING_H

#include <stdint.h>

struct damping;
struct ev;
struct router;
struct event_base;

enum damping_verdict {
	DAMP_PASS = 0,		/* forward it */
	DAMP_DUPLICATE,		/* identical presence: drop */
	DAMP_HELD,		/* rate limited: kept, forwarded later */
	DAMP_LOOP,		/* ping-pong: drop */
};

struct damping *damping_new(struct router *r, struct event_base *base);
void damping_free(struct damping *d);
void damping_set_limits(struct damping *d, unsigned rate, unsigned window,
    unsigned loop_limit, unsigned loop_window);

/*
 * Decide for one event about to be queued from community `src`.  For
 * DAMP_HELD the damping took ownership of ev (it is forwarded later
 * through router_forward); otherwise the caller keeps it.
 */
enum damping_verdict damping_check(struct damping *d, struct ev *ev,
    const char *src);

/*
 * The event damping_check passed could not be queued after all: forget
 * that it was forwarded, so that the same presence sent again goes out.
 */
void damping_unrecord(struct damping *d, const struct ev *ev);

/* Entries held (pairs tracked), for status. */
uint64_t damping_pairs(const struct damping *d);

#endif

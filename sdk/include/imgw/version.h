/*
 * imgw connector SDK — version and ABI numbers.
 *
 * The connector ABI is versioned by a major and a minor number.  imgwd
 * loads a connector when the connector's major equals the core's and its
 * minor is not newer than the core's.  Structures shared across the ABI
 * (the descriptor, the host table, the event) carry their own size and
 * only ever grow at the end; a field that is removed or changes meaning
 * bumps the major.
 *
 * ABI log (newest last):
 *   2026-11-26  1.0  first public ABI: descriptor, host table, events,
 *                    option tables, timers, socket watches, counters.
 *   2026-11-26  1.1  host table: sub_put, sub_del, sub_list (presence
 *                    subscriptions kept in the store); struct imgw_sub;
 *                    struct imgw_event: msg_type (chat/normal/headline)
 *                    and answers (the kind an error answers).
 *   2026-11-26  1.2  descriptor: quiesce; host table: quiesced (work in
 *                    flight finishes before a restart, removal or
 *                    shutdown stops the connector) and emit_now
 *                    (refusals decided at once come back to the caller).
 */
#ifndef IMGW_VERSION_H
#define IMGW_VERSION_H

#define IMGW_VERSION		"0.1.0"
#define IMGW_ABI_MAJOR		1
#define IMGW_ABI_MINOR		2

/* First field of every connector descriptor. "IMGW" in ASCII. */
#define IMGW_CONNECTOR_MAGIC	0x494d4757u

#endif /* IMGW_VERSION_H */

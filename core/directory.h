/*
 * The directory: users and groups from LDAP (libldap), for policy rules
 * that name directory groups (allow-group) or directory users (allow-user
 * without '@').
 *
 * Lookups never run on the loop: one worker thread owns the LDAP
 * connection (StartTLS or ldaps, simple bind) and runs synchronous
 * searches with timeouts; results come back to the loop through a pipe.
 * The loop keeps a cache of what the policy names (group or user -> the IM
 * addresses of its members), refreshed every `ttl` seconds.  When the
 * directory cannot be reached the cache stays in use, the state turns
 * "down" (status and log) and lookups are retried every min(ttl, 10) s.
 *
 * [directory] keys (checked by dir_conf_check, errors as FILE:LINE):
 *   uri                ldap://host[:port] or ldaps://host[:port] (required)
 *   starttls           yes|no (default no; ldap:// only)
 *   bind-dn            DN to bind as (default: anonymous)
 *   bind-password      its password, or
 *   bind-password-file a file whose first line is the password
 *   base               base DNs searched, separated by ';' (required)
 *   user-filter        default (objectClass=inetOrgPerson)
 *   group-filter       default (|(objectClass=groupOfNames)
 *                      (objectClass=groupOfUniqueNames)(objectClass=posixGroup))
 *   group-member-attr  member attributes, space separated (default "member
 *                      uniqueMember memberUid"); a value holding '=' is a
 *                      DN (groupOfNames), any other a uid (posixGroup)
 *   uid-attr           the attribute a uid names (default uid)
 *   im-attr            the attribute holding the IM address (default mail;
 *                      userPrincipalName, ...)
 *   ca-file            CA certificates (PEM) for ldaps/StartTLS; the
 *                      server's certificate is always verified
 *   ttl                seconds a lookup is cached (default 300)
 *   timeout            seconds for a connection or a search (default 5)
 *
 * A group is named by its DN (a name holding '=') or by its cn, searched
 * under every base.  Nested groups are not followed.
 */
#ifndef IMGW_CORE_DIRECTORY_H
#define IMGW_CORE_DIRECTORY_H

#include <stddef.h>

struct conf;
struct event_base;
struct json_object;
struct policy_dir_ops;
struct dir;

/* Check the [directory] section of `c` (absent is fine): 0, or -1 with
 * "FILE:LINE: message". */
int dir_conf_check(const struct conf *c, char *err, size_t errlen);

/*
 * Start the directory client for the [directory] of `c` (copied).  NULL
 * with err "" when the section is absent, NULL with err set when it does
 * not check or the worker cannot start.  Nothing connects yet.
 */
struct dir *dir_new(struct event_base *base, const struct conf *c,
    char *err, size_t errlen);

/*
 * New settings from `c` (reload).  The cache stays in use and everything
 * is looked up again with the new settings.  0, or -1 with err (the old
 * settings stay).
 */
int dir_reconfigure(struct dir *d, const struct conf *c, char *err,
    size_t errlen);

/* Stop the worker (waits for a search in progress, at most `timeout`). */
void dir_free(struct dir *d);

/*
 * The groups and users the policy names (borrowed for the call): looked up
 * now when not cached, kept fresh; anything else is dropped from the cache.
 */
void dir_want(struct dir *d, const char *const *groups, size_t ngroups,
    const char *const *users, size_t nusers);

/*
 * Is bare address `addr` a member of group `name` (user = 0), or the
 * directory user `name` (user = 1)?  1 yes, 0 no, -1 never looked up
 * successfully.
 */
int dir_member(struct dir *d, int user, const char *name, const char *addr);

/* The policy's view of this directory (d borrowed until dir_free). */
void dir_policy_ops(struct dir *d, struct policy_dir_ops *ops);

/* "up", "down" or "connecting" (no lookup finished yet). */
const char *dir_state(const struct dir *d);

/* Status: uri, state, last error, cached entries (a new object). */
struct json_object *dir_status_json(const struct dir *d);

#endif

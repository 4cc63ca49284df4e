/*
 * LD_PRELOAD shim that lets Kamailio's xmpp module (5.2 and later, as of
 * 5.6.3 in Debian 12) read XML at all; bench/bench-sip-xmpp.py loads it
 * only when the module, started without it, has crashed.
 *
 * The module copies expat's attributes with
 *	while (*(atts[i]) != '\0')	(xstream.c and xode_from.c)
 * since a 2017 fix of a gcc 7 warning (it was atts[i] != '\0', a NULL
 * test).  expat ends the list with a NULL pointer, so the first element the
 * XMPP server sends (the stream header) kills the module's process and with
 * it Kamailio (kamailio issue #4154, closed unfixed).  This shim wraps every
 * start-element handler set through XML_SetElementHandler and hands it a
 * copy of the attribute list that ends in "" before the NULL, which stops
 * the loop where the old test did.  A module with the test repaired would
 * read the "" as an attribute name: do not load the shim there.
 *
 * Only elements the module receives go through here; on the SIP -> XMPP
 * path that is the stream header and the handshake answer, so the shim
 * costs the measured path nothing.
 *
 *	cc -shared -fPIC -o kamailio-xmpp-shim.so kamailio-xmpp-shim.c -ldl
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

typedef void (*shim_start_cb)(void *ud, const char *name, const char **atts);
typedef void (*shim_end_cb)(void *ud, const char *name);
typedef void (*shim_set_fn)(void *parser, shim_start_cb start, shim_end_cb end);

#define SHIM_SLOTS 64
#define SHIM_MAX_ATTS 256

/* user data -> the module's handler; the module sets its user data before
 * its handlers (xode_stream_new, xode_from_*).  A Kamailio process has one
 * thread. */
static struct {
	void *ud;
	shim_start_cb start;
} shim_slots[SHIM_SLOTS];
static unsigned shim_next;

static void
shim_start(void *ud, const char *name, const char **atts)
{
	static const char *copy[SHIM_MAX_ATTS + 2];
	size_t i, n = 0;

	for (i = 0; i < SHIM_SLOTS; i++)
		if (shim_slots[i].ud == ud && shim_slots[i].start != NULL)
			break;
	if (i == SHIM_SLOTS)
		return;
	while (atts != NULL && atts[n] != NULL && n < SHIM_MAX_ATTS)
		n += 2;
	for (size_t j = 0; j < n; j++)
		copy[j] = atts[j];
	copy[n] = "";
	copy[n + 1] = NULL;
	shim_slots[i].start(ud, name, copy);
}

void
XML_SetElementHandler(void *parser, shim_start_cb start, shim_end_cb end)
{
	static shim_set_fn real;
	void *ud = *(void **)parser;	/* XML_GetUserData, a macro in expat.h */
	unsigned i;

	if (real == NULL)
		real = (shim_set_fn)dlsym(RTLD_NEXT, "XML_SetElementHandler");
	if (real == NULL) {
		/* the module's own libexpat: it is loaded, but outside the
		 * global scope RTLD_NEXT searches (Kamailio dlopens modules
		 * RTLD_LOCAL) */
		void *h = dlopen("libexpat.so.1", RTLD_NOW | RTLD_NOLOAD);

		if (h != NULL)
			real = (shim_set_fn)dlsym(h, "XML_SetElementHandler");
		if (real == NULL)
			return;
	}
	if (start != NULL) {
		for (i = 0; i < SHIM_SLOTS; i++)
			if (shim_slots[i].ud == ud)
				break;
		if (i == SHIM_SLOTS)
			i = shim_next++ % SHIM_SLOTS;
		shim_slots[i].ud = ud;
		shim_slots[i].start = start;
		start = shim_start;
	}
	real(parser, start, end);
}

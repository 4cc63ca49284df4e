/*
 * Deliberately broken connectors: one source, built once per defect with
 * -DBROKEN_<DEFECT>.  The loader must refuse each with a message naming
 * the file, while the gateway keeps running.
 *
 *   BROKEN_BAD_MAGIC    the descriptor's magic is wrong
 *   BROKEN_NEWER_MAJOR  it wants the next ABI major
 *   BROKEN_NEWER_MINOR  it wants a newer minor of this major
 *   BROKEN_SHORT_SIZE   its descriptor claims to be 8 bytes long
 *   BROKEN_NULL_DESC    the entry returns no descriptor
 *   BROKEN_NO_ENTRY     it exports no imgw_connector_entry (a misspelt one)
 */
#include <stddef.h>

#include <imgw/imgw.h>

static int
broken_init(struct imgw_instance *inst, const struct imgw_host *host,
    void **priv_r)
{
	return -1;
}

static int
broken_deliver(void *priv, const struct imgw_event *ev, const char **cond_r)
{
	return IMGW_FAIL;
}

static const struct imgw_connector broken_connector = {
#if defined(BROKEN_BAD_MAGIC)
	.magic = 0xdeadbeef,
#else
	.magic = IMGW_CONNECTOR_MAGIC,
#endif
#if defined(BROKEN_NEWER_MAJOR)
	.abi_major = IMGW_ABI_MAJOR + 1,
	.abi_minor = 0,
#elif defined(BROKEN_NEWER_MINOR)
	.abi_major = IMGW_ABI_MAJOR,
	.abi_minor = IMGW_ABI_MINOR + 1,
#else
	.abi_major = IMGW_ABI_MAJOR,
	.abi_minor = IMGW_ABI_MINOR,
#endif
#if defined(BROKEN_SHORT_SIZE)
	.size = 8,
#else
	.size = sizeof(struct imgw_connector),
#endif
	.name = "broken",
	.version = "0",
	.description = "a deliberately broken connector",
	.init = broken_init,
	.deliver = broken_deliver,
};

#if defined(BROKEN_NO_ENTRY)
/* a misspelt entry: exported, but not the name imgwd looks for */
IMGW_EXPORT const struct imgw_connector *imgw_connector_entri(void);

IMGW_EXPORT const struct imgw_connector *
imgw_connector_entri(void)
#else
IMGW_EXPORT const struct imgw_connector *
imgw_connector_entry(void)
#endif
{
#if defined(BROKEN_NULL_DESC)
	(void)broken_connector;
	return NULL;
#else
	return &broken_connector;
#endif
}

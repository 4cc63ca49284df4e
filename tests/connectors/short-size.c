/* A connector whose descriptor claims to be 8 bytes long. */
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
	.magic = IMGW_CONNECTOR_MAGIC,
	.abi_major = IMGW_ABI_MAJOR,
	.abi_minor = IMGW_ABI_MINOR,
	.size = 8,
	.name = "broken",
	.version = "0",
	.description = "A connector whose descriptor claims to be 8 bytes long.",
	.init = broken_init,
	.deliver = broken_deliver,
};

IMGW_EXPORT const struct imgw_connector *
imgw_connector_entry(void)
{
	return &broken_connector;
}

/* A shared object that does not export imgw_connector_entry. */
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
	IMGW_CONNECTOR_HEAD,

	.name = "broken",
	.version = "0",
	.description = "A shared object that does not export imgw_connector_entry.",
	.init = broken_init,
	.deliver = broken_deliver,
};

/* a misspelt entry: exported, but not the name imgwd looks for */
const struct imgw_connector *imgw_connector_entri(void);

IMGW_EXPORT const struct imgw_connector *
imgw_connector_entri(void)
{
	return &broken_connector;
}

/* imgw connector SDK — include this one header. */
#ifndef IMGW_IMGW_H
#define IMGW_IMGW_H

#include <imgw/version.h>
#include <imgw/event.h>
#include <imgw/address.h>
#include <imgw/connector.h>

#endif /* IMGW_IMGW_H */

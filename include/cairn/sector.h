/* cairn/sector.h: placeholder, being written. */
#ifndef CAIRN_SECTOR_H
#define CAIRN_SECTOR_H
#include "cairn/base.h"
#endif

/* cairn/snapshot.h: placeholder, being written. */
#ifndef CAIRN_SNAPSHOT_H
#define CAIRN_SNAPSHOT_H
#include "cairn/base.h"
#endif

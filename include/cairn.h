/* cairn.h: the whole public interface of libcairn, one header per part.
 * Include this, or only the parts you use. */
#ifndef CAIRN_H
#define CAIRN_H

#include "cairn/base.h"
#include "cairn/ipld.h"
#include "cairn/car.h"
#include "cairn/store.h"
#include "cairn/unixfs.h"
#include "cairn/piece.h"
#include "cairn/db.h"
#include "cairn/mount.h"
#include "cairn/dagstore.h"
#include "cairn/serve.h"
#include "cairn/adt.h"
#include "cairn/export.h"
#include "cairn/snapshot.h"
#include "cairn/sector.h"
#include "cairn/deal.h"

#define CAIRN_VERSION "0.1.0"

#endif

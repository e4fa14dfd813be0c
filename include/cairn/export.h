/* cairn/export.h: placeholder, being written. */
#ifndef CAIRN_EXPORT_H
#define CAIRN_EXPORT_H
#include "cairn/base.h"
#endif

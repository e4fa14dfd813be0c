/* cairn/adt.h: placeholder, being written. */
#ifndef CAIRN_ADT_H
#define CAIRN_ADT_H
#include "cairn/base.h"
#endif

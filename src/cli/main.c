#include <stdio.h>
#include "cairn.h"
int main(void) { puts(CAIRN_VERSION); return 0; }

/* sv39.S — Sv39 paging: see paging.h for the checks, run here with 3 levels. */
#define VM_LEVELS 3
#define VM_SATP_MODE SATP_MODE_SV39
#define VM_NAME sv39
#include "paging.h"

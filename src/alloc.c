/* Host allocations of the library, and the fault injection that test builds
 * (meson -Dfault_injection=true) use to make the Nth host allocation, device
 * allocation or queue submission fail. Release builds compile the wrappers
 * down to malloc/calloc/free and keep no state. */
#include "internal.h"

#include <stdlib.h>

#ifdef INORM_FAULT_INJECTION
#include <stdatomic.h>

/* Process-wide on purpose: a fault test arms one countdown and then runs a
 * whole program, contexts included. Test builds only. */
static atomic_long countdown[INORM_FAULT_KINDS];
static atomic_bool fired;
static atomic_long live_allocations;

void inorm_fault_arm(inorm_fault_kind kind, long n)
{
    for (int k = 0; k < INORM_FAULT_KINDS; ++k)
        atomic_store(&countdown[k], 0);
    atomic_store(&countdown[kind], n);
    atomic_store(&fired, false);
}

bool inorm_fault_fired(void)
{
    return atomic_load(&fired);
}

long inorm_live_allocations(void)
{
    return atomic_load(&live_allocations);
}

bool inorm_fault_hit(inorm_fault_kind kind)
{
    if (atomic_load(&countdown[kind]) <= 0)
        return false;
    if (atomic_fetch_sub(&countdown[kind], 1) != 1)
        return false;
    atomic_store(&fired, true);
    return true;
}

static void *counted(void *p)
{
    if (p)
        atomic_fetch_add(&live_allocations, 1);
    return p;
}
#define COUNT(p) counted(p)
#define FAULT() inorm_fault_hit(INORM_FAULT_HOST_ALLOC)
#define UNCOUNT(p) (p ? (void)atomic_fetch_sub(&live_allocations, 1) : (void)0)
#else
#define COUNT(p) (p)
#define FAULT() false
#define UNCOUNT(p) ((void)(p))
#endif

void *inorm_malloc(size_t bytes)
{
    return FAULT() ? NULL : COUNT(malloc(bytes));
}

void *inorm_calloc(size_t count, size_t size)
{
    return FAULT() ? NULL : COUNT(calloc(count, size));
}

void *inorm_realloc(void *p, size_t bytes)
{
    if (FAULT())
        return NULL;
    void *grown = realloc(p, bytes);
    return p ? grown : COUNT(grown);
}

void inorm_free(void *p)
{
    UNCOUNT(p);
    free(p);
}

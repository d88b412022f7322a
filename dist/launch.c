/* dist/launch.c - was this process started by an MPI launcher? (both builds) */
#include <stdlib.h>

#include "dist/dist.h"

/* mpirun (Open MPI) sets OMPI_COMM_WORLD_*; srun and other PMI launchers set PMIX_RANK or PMI_RANK.
 * Without one of them a run is a single process and MPI is not initialised at all: an Open MPI
 * "singleton" MPI_Init would start a daemon for nothing. */
bool cf_dist_launched(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return true;
    return false;
}

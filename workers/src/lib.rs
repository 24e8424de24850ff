//! Herald's queue workers (fan-out, email, scheduler) live here; each process has a thin binary in `src/bin/`.

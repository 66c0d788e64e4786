#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# replinit on PostgreSQL 11 (npm binaries; Debian's 15 pg_basebackup and
# psql work against it): the same checks as 50-replinit.sh, where the
# standby gets recovery.conf (standby_mode, primary_conninfo with a
# passfile, restore_command, recovery_target_timeline) instead of
# standby.signal, and the primary wal_keep_segments instead of wal_keep_size.
. "$(dirname "$0")/../lib/pgnpm.sh"
PG11_BIN=$(pgnpm_install 11) || { echo "not ok - PostgreSQL 11 from npm could not be installed"; exit 1; }
export PGBIN=$PG11_BIN REPLINIT_PGBIN=$PG11_BIN
. "$(dirname "$0")/50-replinit.sh"

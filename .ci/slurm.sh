# A one-node SLURM cluster on this machine for the test suite (sourced by .ci/run).
#
# slurm_up installs Debian's slurm-wlm and munge where they are missing, writes a one-node
# /etc/slurm/slurm.conf, starts munged (unless one already answers), slurmctld and slurmd,
# and waits until the node is idle. slurm_down stops what slurm_up started, by the pid
# files it wrote, and removes the configuration.
# The configuration must be at the default path: the Snakemake job step on the node drops
# every SLURM_* variable (SLURM_CONF included) before its srun. A slurm.conf that this
# script did not write is never overwritten. Ports 16817/16818 and the state under
# $SLURM_CI_DIR keep clear of anything else on the machine.

SLURM_CI_DIR=${SLURM_CI_DIR:-/tmp/avdistill-slurm}
SLURM_CI_CONF=/etc/slurm/slurm.conf
SLURM_CI_MARK="# written by avdistill's .ci/slurm.sh"

slurm_install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    echo "slurm: installing slurm-wlm and munge from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

slurm_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # a munged already runs
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile /etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    /usr/sbin/munged --force --pid-file "$SLURM_CI_DIR/munged.pid"
    for _ in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.5
    done
    echo "slurm: munged did not start" >&2
    return 1
}

slurm_up() {
    slurm_install
    slurm_down 2>/dev/null || true
    rm -rf "$SLURM_CI_DIR"
    mkdir -p "$SLURM_CI_DIR/ctld" "$SLURM_CI_DIR/d" "$SLURM_CI_DIR/log"
    slurm_munge
    local node memory
    node=$(hostname -s)
    # Leave 2 GB to the system; jobs ask for models.<model>.resources.mem_mb.
    memory=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 2000 ))
    if [ -e "$SLURM_CI_CONF" ] && ! grep -qF "$SLURM_CI_MARK" "$SLURM_CI_CONF"; then
        echo "slurm: $SLURM_CI_CONF exists and is not ours; not overwriting it" >&2
        return 1
    fi
    mkdir -p "$(dirname "$SLURM_CI_CONF")"
    cat >"$SLURM_CI_CONF" <<EOF
$SLURM_CI_MARK
ClusterName=avdistill-ci
SlurmctldHost=$node
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$SLURM_CI_DIR/ctld
SlurmdSpoolDir=$SLURM_CI_DIR/d
SlurmctldPidFile=$SLURM_CI_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_CI_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_CI_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_CI_DIR/log/slurmd.log
NodeName=$node CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    slurmctld
    slurmd
    for _ in $(seq 60); do
        if sinfo -h -o %t 2>/dev/null | grep -q idle; then
            echo "slurm: node $node idle ($(nproc) CPUs, $memory MB)"
            return
        fi
        sleep 1
    done
    echo "slurm: the node never became idle; logs in $SLURM_CI_DIR/log" >&2
    sinfo >&2 || true
    return 1
}

slurm_down() {
    local name pid
    for name in slurmd slurmctld munged; do
        if [ -s "$SLURM_CI_DIR/$name.pid" ]; then
            pid=$(cat "$SLURM_CI_DIR/$name.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 20); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            rm -f "$SLURM_CI_DIR/$name.pid"
        fi
    done
    if [ -e "$SLURM_CI_CONF" ] && grep -qF "$SLURM_CI_MARK" "$SLURM_CI_CONF"; then
        rm -f "$SLURM_CI_CONF"
    fi
}

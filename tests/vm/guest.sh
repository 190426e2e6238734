#!/bin/sh
# Runs inside the VM as composer-vm-test.service (system.slice), which the image starts after boot and
# which powers the VM off when this ends.  Sets composer up from the run's source snapshot with no
# network (wheels from /mnt/wheels), then runs the tests twice: from a root login session (runuser -l:
# user.slice/user-0.slice/session-N.scope, where an ssh user is) and from this plain service.
# Everything it prints goes to /mnt/out/guest.log, which the host streams; results are *.rc and *.xml.
OUT=/mnt/out
exec >>"$OUT/guest.log" 2>&1
say() { echo "==> vm: $*"; }
now() { date +%s; }

say "up: kernel $(uname -r), $(systemctl --version | head -1), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup)"
{
  echo "-- boot: kernel $(uname -r); $(systemctl --version | head -1); /sys/fs/cgroup: $(stat -fc %T /sys/fs/cgroup)"
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo "root cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
    echo "root cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    for s in system.slice user.slice; do
      [ -f /sys/fs/cgroup/$s/cgroup.subtree_control ] && echo "$s cgroup.subtree_control: $(cat /sys/fs/cgroup/$s/cgroup.subtree_control)"
    done
  else
    echo "v1 hierarchies: $(ls /sys/fs/cgroup | tr '\n' ' ')"
  fi
} >"$OUT/layout.txt"

# /root/composer/.venv already holds the dependencies (built with the image), setuptools included: setup
# only adds composer itself, without an isolated build env (PIP_NO_BUILD_ISOLATION=0 turns it OFF), which
# under TCG costs a minute.
say "copying the source snapshot, ./dev setup offline"
t=$(now)
cp -a /mnt/in/src/. /root/composer/ && cd /root/composer &&
  PIP_NO_INDEX=1 PIP_FIND_LINKS=/mnt/wheels PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_BUILD_ISOLATION=0 COMPOSER_DEV_EXTRAS=test ./dev setup
echo $? >"$OUT/setup.rc"
echo $(( $(now) - t )) >"$OUT/setup.secs"
if [ "$(cat "$OUT/setup.rc")" != 0 ]; then say "./dev setup failed"; exit 0; fi

for phase in login service; do
  [ -f "/mnt/in/$phase.sh" ] || continue
  t=$(now)
  if [ $phase = login ]; then
    say "tests from a root login session (runuser -l root)"
    runuser -l root -c "sh /mnt/in/login.sh"
  else
    say "tests from this plain systemd service (system.slice)"
    sh /mnt/in/service.sh
  fi
  echo $? >"$OUT/$phase.rc"
  echo $(( $(now) - t )) >"$OUT/$phase.secs"
done
say "done"

"""`composer watch` and `up --watch`: the edit -> see loop of the spec's `develop.watch` rules, and a
stack that reloads itself when its files change.

    rules.py     the rules of the watched services, compiled: which paths each covers (ignore.py:
                 .dockerignore, editor temp files, .git/, the rule's ignore/include)
    inotify.py   watchdog's inotify fd, one watch per directory a rule can sync (ignored trees cost none)
    debounce.py  changed paths -> batches (a quiet window, capped for long bursts)
    plan.py      a batch -> what to do per service: rebuild, then sync, then restart, then exec
    sync.py      files written straight into a container's filesystem from the host
    session.py   the loop: watches, batches, actions through the project library, reloads

A layer above project (it drives up, restart and build through ProjectRunner), beside ui, below
the CLI; it never prints: what happens arrives as WatchEvents for the CLI to render."""

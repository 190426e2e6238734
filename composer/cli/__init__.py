"""The thin command line: argv -> options -> library call -> exit code. Only here (and in ui/, and
watch/ when it lands) is rich used. Command modules import heavy libraries inside their handlers, so that
`composer --help` or `composer ps` do not pay for pyroute2 or rich when they do not need them."""

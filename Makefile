# mod_diagproc: built against apxs's httpd headers, tested with cmocka + prove against a real httpd.
# `make`         build mod_diagproc.so
# `make run`     install missing packages, build, start a private httpd, print its URL
# `make test`    install missing packages, build, run unit and integration tests
# `make install` install the module and its a2enmod files the Debian way

include Makefile.apxs

# -*- coding: utf-8 -*-
# Documentation stub of the binary module lltune_timesync; its documentation is the sidecar lltune_timesync.yml.
# Ansible runs the binary file lltune_timesync beside this one, never this file; this file exists so
# that `ansible-doc -l` reads a text file for the module (it cannot read the binary).

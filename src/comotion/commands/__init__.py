"""Sub-commands of the ``comotion`` program, one module each (see ``comotion.cli``)."""

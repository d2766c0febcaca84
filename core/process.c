/* process.c: not written yet */

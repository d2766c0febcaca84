int placeholder_fail_init;

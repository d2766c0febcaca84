int placeholder_old_minor;

int placeholder_cycle_b;

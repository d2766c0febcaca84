int placeholder_dep_b;

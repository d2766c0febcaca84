int placeholder_good;

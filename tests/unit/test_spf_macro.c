#include "unit.h"
static CU_TestInfo t[] = { CU_TEST_INFO_NULL };
static CU_SuiteInfo suites[] = { { "spf", NULL, NULL, NULL, NULL, t }, CU_SUITE_INFO_NULL };
int main(void) { return unit_run(suites); }

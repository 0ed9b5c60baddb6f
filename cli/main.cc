#include "cli/fleetctl.h"

int main(int argc, char** argv) { return fleet::cli::Run(argc, argv); }

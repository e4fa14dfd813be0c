/* commands.h: the command groups of `cairn`, one file each, joined into the
 * table in main.c. */
#ifndef CAIRN_CLI_COMMANDS_H
#define CAIRN_CLI_COMMANDS_H

#include "cmd.h"

extern const cli_cmd cli_auth_cmd;
extern const cli_cmd cli_adt_cmd;
extern const cli_cmd cli_block_cmd;
extern const cli_cmd cli_store_cmd;
extern const cli_cmd cli_car_cmd;
extern const cli_cmd cli_cid_cmd;
extern const cli_cmd cli_dagstore_cmd;
extern const cli_cmd cli_export_cmd;
extern const cli_cmd cli_pack_cmd;
extern const cli_cmd cli_unpack_cmd;
extern const cli_cmd cli_piece_cmd;
extern const cli_cmd cli_sector_cmd;
extern const cli_cmd cli_serve_cmd;
extern const cli_cmd cli_snapshot_cmd;
extern const cli_cmd cli_storage_cmd;

#endif

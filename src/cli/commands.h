/* commands.h: the command groups of `cairn`, one file each, joined into the
 * table in main.c. */
#ifndef CAIRN_CLI_COMMANDS_H
#define CAIRN_CLI_COMMANDS_H

#include "cmd.h"

extern const cli_cmd cli_auth_cmd;
extern const cli_cmd cli_chain_cmd;
extern const cli_cmd cli_adt_cmd;
extern const cli_cmd cli_block_cmd;
extern const cli_cmd cli_store_cmd;
extern const cli_cmd cli_car_cmd;
extern const cli_cmd cli_cid_cmd;
extern const cli_cmd cli_dagstore_cmd;
extern const cli_cmd cli_deal_cmd;
extern const cli_cmd cli_export_cmd;
extern const cli_cmd cli_pack_cmd;
extern const cli_cmd cli_unpack_cmd;
extern const cli_cmd cli_piece_cmd;
extern const cli_cmd cli_sector_cmd;
extern const cli_cmd cli_serve_cmd;
extern const cli_cmd cli_snapshot_cmd;
extern const cli_cmd cli_storage_cmd;

/* The daemon's Cairn.Deal* methods (cmd_deal.c); payload: the cli_repo. */
int cli_deal_rpc_import(cairn_buf *result, const cairn_node *params, void *payload);
int cli_deal_rpc_list(cairn_buf *result, const cairn_node *params, void *payload);
/* The daemon's Cairn.Snapshot* methods (cmd_snapshot.c); payload: the
 * cli_repo. */
int cli_snapshot_rpc_create(cairn_buf *result, const cairn_node *params, void *payload);
int cli_snapshot_rpc_list(cairn_buf *result, const cairn_node *params, void *payload);

/* The daemon's Cairn.Storage* methods (cmd_storage.c) and Cairn.Sector*
 * methods (cmd_sector.c); payload: the cli_repo. */
int cli_storage_rpc_attach(cairn_buf *result, const cairn_node *params, void *payload);
int cli_storage_rpc_list(cairn_buf *result, const cairn_node *params, void *payload);
int cli_storage_rpc_detach(cairn_buf *result, const cairn_node *params, void *payload);
int cli_storage_rpc_redeclare(cairn_buf *result, const cairn_node *params, void *payload);
int cli_sector_rpc_add_piece(cairn_buf *result, const cairn_node *params, void *payload);
int cli_sector_rpc_read_piece(cairn_buf *result, const cairn_node *params, void *payload);
int cli_sector_rpc_commd(cairn_buf *result, const cairn_node *params, void *payload);
int cli_sector_rpc_check(cairn_buf *result, const cairn_node *params, void *payload);
int cli_sector_rpc_list(cairn_buf *result, const cairn_node *params, void *payload);
int cli_sector_rpc_move(cairn_buf *result, const cairn_node *params, void *payload);
/* Around each of those calls in the daemon: attach, detach and redeclare
 * run `alone` (they change the store's list of paths), the rest beside
 * each other. */
void cli_storage_rpc_enter(bool alone);
void cli_storage_rpc_leave(void);
/* `arg` made absolute for the daemon (cmd_storage.c); with `or_id`, only
 * when it names a file here, else copied (a UUID). */
int cli_storage_abs_path(cairn_buf *out, const char *arg, bool or_id);

/* The daemon's Cairn.ChainExportRange (cmd_chain.c); payload: the cli_repo. */
int cli_chain_rpc_export_range(cairn_buf *result, const cairn_node *params, void *payload);

#endif

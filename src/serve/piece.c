/* piece.c: GET|HEAD /piece/{pieceCid}: a whole piece, with ranges, as Boost
 * and Curio serve them (to come). */
#include "serve_i.h"

enum MHD_Result serve_piece(struct MHD_Connection *c, cairn_server *srv, const char *url,
			    bool head)
{
	(void)srv;
	(void)url;
	(void)head;
	return serve_send_text(c, MHD_HTTP_NOT_IMPLEMENTED, "/piece/ is not served yet\n");
}
